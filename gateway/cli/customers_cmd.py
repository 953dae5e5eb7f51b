"""`centralino customers`: load the customer directory the screen pop looks callers up in."""

from __future__ import annotations

from pathlib import Path

import click

from cti.clidb import run_db
from cti.importer import ImportFileError, import_customers, read_file
from gateway.settings import Settings


@click.group(name="customers")
def customers() -> None:
    """Customers: import from CSV, find by number or name."""


@customers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def import_(settings: Settings, file: Path) -> None:
    """Import FILE (CSV: name,phones[,external_id,segment,language,notes]).

    Good rows are stored, bad rows are listed with line, field and reason (exit status 1), and
    no row is ever stored in part.
    """
    try:
        data = read_file(file)
        report = run_db(settings, lambda s: import_customers(s, data, str(file)))
    except ImportFileError as exc:
        raise click.ClickException(f"{exc}; nothing was imported") from None
    click.echo(f"{file}: {report.rows} rows: {report.added} customers added, "
               f"{report.updated} updated, {len(report.rejected_lines)} rows rejected")
    for e in report.errors:
        click.echo(f"{file}:{e.line}: {e.field}: {e.reason}", err=True)
    if report.errors:
        raise SystemExit(1)


@customers.command("find")
@click.argument("text")
@click.pass_obj
def find(settings: Settings, text: str) -> None:
    """Find customers by phone number (any format) or name; shows who, not their history."""
    from cti.customers import CustomerStore

    found = run_db(settings, lambda s: CustomerStore(s).search(text))
    if not found:
        click.echo("no customer found")
    for c in found:
        click.echo(f"#{c.id} {c.name} [{c.segment or '-'}, {c.language or '-'}] "
                   f"{' '.join(c.phones)}")
