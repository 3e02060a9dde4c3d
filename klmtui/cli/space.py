"""`klmtui space`: run the thesis sampler (core.space) and list the configurations.

Analytic counting only: torch is never imported, so the command answers in well under a second.
"""

from __future__ import annotations

import click

from klmtui.cli.common import emit_json, print_table

JSON_KEYS = ("arch", "K", "L", "M", "channels", "params", "macs", "in_thesis", "genotype")


def _channel_list(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        channels = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 12,24,36, got {value!r}") from None
    if not channels:
        raise click.BadParameter("needs at least one channel count")
    if min(channels) < 1:
        raise click.BadParameter(f"channel counts must be >= 1, got {value!r}")
    return channels


@click.command("space")
@click.option("--cells", type=int, default=20, show_default=True, help="Total cells, reductions included (K+L+M+2).")
@click.option("--channels", default="12,24,36", show_default=True, callback=_channel_list,
              help="Initial channel counts, comma-separated.")
@click.option("--balance", type=int, default=6, show_default=True, help="Max difference between K, L, M (inclusive).")
@click.option("--min-distance", type=int, default=4, show_default=True,
              help="Drop triples closer than this (Manhattan) to the last kept one.")
@click.option("--max-params", type=float, default=3.3e6, show_default=True,
              help="Drop triples with this many parameters or more (exact count).")
@click.option("--params-channels", type=int, default=None, help="Channel count the cap is checked at [largest].")
@click.option("--min-block", type=int, default=2, show_default=True, help="Minimum normal cells per block.")
@click.option("--genotype", default="SNAS_mild", show_default=True, help="Cell genotype (see core.genotypes).")
@click.option("--thesis-only", is_flag=True,
              help="Keep only configurations the thesis trained (its 54: drops 5-5-8, which the text's rules keep).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of rows instead of a table.")
def space(cells: int, channels: list[int], balance: int, min_distance: int, max_params: float,
          params_channels: int | None, min_block: int, genotype: str, thesis_only: bool, as_json: bool) -> None:
    """Sample the K-L-M meta-architecture as in thesis sections 3.2-3.3, with exact params and MACs."""
    from core.space import sample

    rows = sample(cells=cells, channels=channels, balance=balance, min_distance=min_distance,
                  max_params=max_params, params_channels=params_channels, min_block=min_block, genotype=genotype)
    if thesis_only:
        rows = [row for row in rows if row.in_thesis]
    if as_json:
        emit_json([{key: row.to_dict()[key] for key in JSON_KEYS} for row in rows])
        return
    triples = len({row.triple for row in rows})
    title = f"{triples} K-L-M triples x {len(channels)} channel counts = {len(rows)} configurations ({genotype})"
    print_table(
        title,
        ["arch", "channels", "params", "params (M)", "MACs (M)", "in thesis"],
        [
            [row.triple, row.channels, f"{row.params:,}", f"{row.params / 1e6:.1f}", f"{row.macs / 1e6:.1f}",
             "yes" if row.in_thesis else "no"]
            for row in rows
        ],
    )


COMMANDS: list = [space]
