"""Query benchmark: routed against raw-only, on a realistic, skewed raw log.

    python bench/query.py [--events 30000000] [--days 180] [--orgs 1000] [--repeat 15]

Generates the raw log inside embedded ClickHouse (chDB): N events over D days for K
organizations, one heavy organization carrying about 30% of the traffic and the rest a
long tail; aggregates every day; then measures, in the same run, p50 and p95 of
``get_org_usage`` routed and with route="raw", for ranges of 1, 7, 30, 90 and 180 days,
for the heavy organization and a small one, and an all-organizations dashboard query
(total per day over 90 days) from the rollup view against the raw log.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from clickhouse_connect.driver.client import Client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aggregator.runner import Aggregator  # noqa: E402
from aggregator.settings import AggregatorSettings  # noqa: E402
from aiusage.clickhouse import connect  # noqa: E402
from aiusage.clock import SystemClock  # noqa: E402
from aiusage.schema import context_for, migrate  # noqa: E402
from aiusage.settings import ClickHouseSettings  # noqa: E402
from query.api import UsageQuery  # noqa: E402

FIRST_DAY = date(2026, 5, 1)
HEAVY = "org-0001"


def generate(client: Client, db: str, events: int, days: int, orgs: int) -> None:
    # 30% to org-0001; the rest spread over org-0002.. with a Pareto tail.
    client.command(
        f"""INSERT INTO `{db}`.ai_usage_log (event_id, timestamp, organization_id, model, provider,
            feature, user_id, input_tokens, cached_tokens, output_tokens, cost_usd, kafka_topic,
            kafka_partition, kafka_offset)
        SELECT generateUUIDv4(number),
            toDateTime64('{FIRST_DAY}', 3, 'UTC')
                + toIntervalMillisecond(intDiv(number * {days * 86_400_000}, {events})),
            if(rand(1) % 10 < 3, '{HEAVY}', concat('org-', leftPad(toString(1 + least({orgs - 1},
                toUInt32(1 / pow(randCanonical(2), 0.8)))), 4, '0'))),
            ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet'][number % 3 + 1], 'p', 'chat',
            concat('u', toString(number % 300)),
            100 + number % 4000 AS input, intDiv(input, 1 + number % 3), 20 + number % 700,
            toDecimal64(number % 100000, 9) / 1000000, 'bench', toInt32(number % 6), toInt64(number)
        FROM numbers({events})
        SETTINGS max_insert_threads = 2"""
    )


def measure(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    action()  # warm-up
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(round(0.95 * len(samples))) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        settings = ClickHouseSettings(dsn=f"chdb://{data}", database="bench")
        client = connect(settings)
        ctx = context_for(settings)
        migrate(client, ctx)
        db = ctx.database
        started = time.perf_counter()
        generate(client, db, args.events, args.days, args.orgs)
        share = client.query(
            f"SELECT countIf(organization_id = '{HEAVY}') / count(), uniqExact(organization_id) "
            f"FROM `{db}`.ai_usage_log"
        ).result_rows[0]
        print(f"generated {args.events:,} events over {args.days} days in "
              f"{time.perf_counter() - started:.0f}s: {share[1]} organizations, "
              f"{HEAVY} has {share[0]:.0%}")  # fmt: skip
        small = client.query(
            f"SELECT organization_id FROM `{db}`.ai_usage_log GROUP BY organization_id "
            "ORDER BY count() ASC LIMIT 1 OFFSET 100"
        ).result_rows[0][0]
        # Settle 0: the rows were generated seconds before the aggregation (see docs).
        started = time.perf_counter()
        aggregator = Aggregator(client, ctx, AggregatorSettings(ingest_settle_s=0), SystemClock())
        aggregator.run([FIRST_DAY + timedelta(days=n) for n in range(args.days)])
        print(f"aggregated {args.days} days in {time.perf_counter() - started:.0f}s")
        end = datetime.combine(FIRST_DAY + timedelta(days=args.days), datetime.min.time(), UTC)
        # As the HTTP API runs: one UsageQuery, whose run-log cache lives across requests.
        side = connect(settings)
        service = UsageQuery(client, ctx, settle_s=0.0, parallel_client=side)
        header = (
            f"{'query':<34}{'routed p50':>11}{'p95':>8}{'raw p50':>10}{'p95':>8}{'speed-up':>10}"
        )
        print(header)
        for org, label in ((HEAVY, "heavy"), (small, "small")):
            for span in (1, 7, 30, 90, 180):
                start = end - timedelta(days=span)
                routed = measure(lambda o=org, s=start: service.org_usage(o, s, end), args.repeat)
                raw = measure(
                    lambda o=org, s=start: service.org_usage(o, s, end, route="raw"), args.repeat
                )
                name = f"{label} org, {span} days"
                print(f"{name:<34}{routed[0]:>9.1f}ms{routed[1]:>6.1f}ms"
                      f"{raw[0]:>8.1f}ms{raw[1]:>6.1f}ms{raw[0] / routed[0]:>9.1f}x")  # fmt: skip
        lo = (end - timedelta(days=90)).strftime("%Y-%m-%d")
        routed_all = measure(
            lambda: client.query(
                f"SELECT date, sum(total_cost), sum(total_calls) FROM `{db}`.v_ai_usage_daily "
                f"WHERE date >= '{lo}' GROUP BY date ORDER BY date"
            ),
            args.repeat,
        )
        raw_all = measure(
            lambda: client.query(
                f"SELECT toDate(timestamp) AS d, sum(cost_usd), count() FROM `{db}`.ai_usage_log "
                f"FINAL WHERE timestamp >= '{lo}' GROUP BY d ORDER BY d "
                "SETTINGS do_not_merge_across_partitions_select_final = 1"
            ),
            args.repeat,
        )
        name, ratio = "all orgs, per day, 90 days", raw_all[0] / routed_all[0]
        print(f"{name:<34}{routed_all[0]:>9.1f}ms{routed_all[1]:>6.1f}ms"
              f"{raw_all[0]:>8.1f}ms{raw_all[1]:>6.1f}ms{ratio:>9.1f}x")  # fmt: skip
        side.close()
        client.close()


if __name__ == "__main__":
    main()
