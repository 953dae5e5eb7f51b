"""The speech IVR: callers say what they need, the call lands in the right queue.

:mod:`~gateway.ivr.component` receives ARI StasisStart ``ivr,<flow>``; each call is an
:class:`~gateway.ivr.session.IvrSession` (the state machine); :mod:`~gateway.ivr.media` brings
the caller's audio in over ARI external media (RTP, :mod:`gateway.rtp`); :mod:`~gateway.ivr.ears`
is the seam to the speech engine; :mod:`~gateway.ivr.transcripts` masks and stores transcripts.
"""
