"""Read a chDB directory from a separate process (a process can open one directory only).

python -m tests.probe chdb:///path database  ->  JSON: rows, rows_final, totals
"""

from __future__ import annotations

import json
import sys

from aiusage.clickhouse import connect
from aiusage.settings import ClickHouseSettings
from tests.pipeline import raw_row_count, stored_totals


def main(dsn: str, database: str) -> None:
    client = connect(ClickHouseSettings(dsn=dsn, database=database))
    totals = stored_totals(client, database)
    offsets = client.query(
        f"SELECT kafka_partition, groupArray(kafka_offset) FROM `{database}`.ai_usage_log FINAL "
        "GROUP BY kafka_partition"
    ).result_rows
    print(
        json.dumps(
            {
                "rows": raw_row_count(client, database, final=False),
                "rows_final": raw_row_count(client, database),
                "offsets": {str(p): sorted(o) for p, o in offsets},
                "totals": {
                    org: {day: {**v, "cost": str(v["cost"])} for day, v in days.items()}
                    for org, days in totals.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
