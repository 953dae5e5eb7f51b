"""`centralino quality ...`: voice-quality tools for network planning and troubleshooting."""

from __future__ import annotations

import json

import click

from gateway.quality import emodel


@click.group(name="quality")
def quality() -> None:
    """Voice quality (ITU-T G.107 E-model)."""


@quality.command(name="mos")
@click.option("--codec", "codec_name", required=True, help="pcmu, pcma, g722, gsm, ilbc, g729a ...")
@click.option("--loss-pct", type=float, default=0.0, show_default=True, help="Packet loss, percent.")
@click.option("--delay-ms", type=float, default=0.0, show_default=True,
              help="One-way absolute (mouth-to-ear) delay Ta, ms.")
@click.option("--burst-ratio", type=float, default=1.0, show_default=True,
              help="1 = random loss; >1 = bursty loss.")
def mos(codec_name: str, loss_pct: float, delay_ms: float, burst_ratio: float) -> None:
    """Print R-factor and MOS as one JSON object."""
    try:
        r = emodel.r_factor(codec_name, loss_pct, delay_ms, burst_ratio)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({
        "codec": emodel.codec(codec_name).name, "loss_pct": loss_pct, "delay_ms": delay_ms,
        "burst_ratio": burst_ratio, "r_factor": round(r, 2), "mos": round(emodel.mos_from_r(r), 2),
    }))
