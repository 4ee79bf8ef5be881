"""What the catalog holds (README "Make targets"): make scan | check SYMBOL=… | compact | log
SYMBOL=… | gc | doctor | report [SYMBOL=… | SET=…]: every bar type; one's gaps and health;
maintenance; the setup check; the coverage page."""

from __future__ import annotations

import functools

import hydra
from omegaconf import DictConfig

from ntrader import doctor, runs  # doctor: a lazy package, its modules load for doctor=true
from ntrader.catalog import Catalog, list_catalog, record, render_listing
from ntrader.catalog.maintenance import ACTIONS, maintain
from ntrader.sessions import parse_day
from ntrader.symbols import bar_type_text, instrument_id_text, instrument_of
from ntrader.tabular import check_format


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, object]:
    fmt = check_format(str(cfg.format))
    if cfg.doctor:  # first: a missing or unreachable catalog is a finding, not an error
        with ctx.step("doctor"):
            checked = doctor.diagnose(doctor.DoctorSpec.of(cfg.catalog.path, cfg.ibkr, cfg.dsn))
        print(checked.render(fmt))
        ctx.counts.update(checked.counts())
        return checked.summary(raise_on_fail=True)  # a fail: exit code = the worst finding
    catalog = Catalog.from_config(cfg.catalog)
    venues = (cfg.instruments.default_venue, cfg.instruments.venues)
    iid = cfg.symbol and instrument_id_text(cfg.symbol, *venues)
    bar_type = (iid and bar_type_text(iid, cfg.bars.spec)) or None
    action = next((a for a in ACTIONS if cfg.get(a)), None)  # compact | log | repair | gc
    if action or not bar_type:  # a missing catalog: error here
        catalog.require_exists(bar_type and instrument_of(bar_type), str(cfg.bars.spec))
    if action:
        with ctx.step(action):
            done = maintain(catalog, action, bar_type, fmt)
        ctx.counts.update(done.counts)
        print(done.text)
        return {"catalog": catalog.url, **done.summary}
    if not bar_type and not cfg.report:
        with ctx.step("scan"):
            rows = [record(a) for a in list_catalog(catalog)]
        ctx.counts.update(bar_types=len(rows), rows=sum(r["rows"] for r in rows))
        print(render_listing(rows, fmt, catalog.url))
        return {"catalog": catalog.url, "bar_types": rows}
    from ntrader import quality  # check, report: calendars need pandas (tests/test_startup.py)
    from ntrader.ibkr import nodata

    expiry = nodata.parse_expiry(cfg.ibkr.nodata_expiry_days)
    span: dict = {"start": parse_day(cfg.start, "START"), "end": parse_day(cfg.end, "END")}
    known = functools.partial(nodata.current, catalog, expiry_days=expiry)
    if cfg.report:
        opts = quality.report_options(cfg, bar_type)  # bar types, columns, hours, health
        out = quality.catalog_report(catalog, ctx.run_dir, no_data=known, **span, **opts)
        print(out.render())  # its seconds are in summary.json report
        return {"catalog": catalog.url, "report": out.as_dict()}
    with ctx.step("check"):
        report = quality.check_bar_type(
            catalog,
            bar_type,
            **span,
            **quality.check_options(cfg.check, cfg.health),
            no_data=known(str(bar_type)),  # bar_type is set: no SYMBOL scanned above
            nodata_expiry_days=expiry,
        )
    print(report.render(fmt, int(cfg.check.max_listed)))
    ctx.counts.update(report.counts())
    if cfg.check.fail_on_gaps:
        report.raise_on_gaps()
    return {"catalog": catalog.url, "check": report.as_dict()}


@hydra.main(version_base="1.3", config_path="../conf", config_name="scan")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "scan", body)


if __name__ == "__main__":
    runs.entry(main)
