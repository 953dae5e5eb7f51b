"""Offline speech engine for the IVR: telephone audio in, an intent (or none) out.

Modules, one job each: :mod:`speech.audio` (WAV, resampling, G.711, framing), :mod:`speech.vad`
(end-pointer: barge-in and end of speech), :mod:`speech.recognisers` (pocketsphinx and Vosk
behind one interface), :mod:`speech.intents` (hypothesis -> intent with a threshold, DTMF),
:mod:`speech.masking` (card numbers out of transcripts and logs) and :mod:`speech.pipeline`
(all of it, streaming, with an asyncio facade). Nothing here downloads anything.
"""
