"""``centralino demo``: the whole product on the embedded defaults, with real calls."""
