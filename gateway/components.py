"""Every component the gateway runs, in start order (``"module:Class"``; see gateway.component).

Add your part's line here; order matters only where one component uses another in ``start``.
"""

COMPONENTS: tuple[str, ...] = (
    "cti.component:CTIComponent",
    "gateway.ivr.component:IvrComponent",
    "gateway.quality.component:QualityComponent",
)
