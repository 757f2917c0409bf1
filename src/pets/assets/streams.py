"""External assets: the Kafka topics and the tables the streaming flows write.

Dagster does not materialize these; declaring them (with what feeds what) makes the lineage raw
feeds -> rankings and models -> bots -> executions -> P&L -> reports visible in the asset graph. Topic
descriptions come from the topic registry (config/topics.yaml).
"""

from __future__ import annotations

import dagster as dg

from pets.schemas.topics import TopicRegistry

# Which topics (and batch assets) each topic is derived from, as the flows wire them.
TOPIC_UPSTREAM: dict[str, tuple[str, ...]] = {
    "md.book": (),
    "md.tob": ("md.book",),
    "md.markets": ("@market_universe",),
    "news.item": (),
    "esports.event": (),
    "chain.fill": (),
    "whale.rankings": ("@whale_rankings",),
    "signal.news": ("news.item", "md.markets"),
    "signal.esports": ("esports.event", "md.markets"),
    "signal.whale": ("chain.fill", "whale.rankings", "md.markets"),
    "order.intent": ("md.tob", "md.markets", "signal.news", "signal.esports", "signal.whale", "bot.control"),
    "order.exec": ("order.intent",),
    "order.denied": ("order.intent",),
    "exec.report": ("order.exec",),
    "pnl.snapshot": ("exec.report", "md.tob"),
    "bot.control": (),
    "risk.alert": ("exec.report", "md.tob"),
    "batch.control": (),
}
# Tables the flows write (not the batch assets), with the topic each one records.
FLOW_TABLES: dict[str, str] = {
    "wallet_fills": "chain.fill",
    "pnl_snapshots": "pnl.snapshot",
    "execution_reports": "exec.report",
    "top_of_book": "md.tob",
}


def topic_key(topic: str) -> dg.AssetKey:
    return dg.AssetKey(["kafka", topic.replace(".", "_")])


def table_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["postgres", table])


def _dep(name: str) -> dg.AssetKey:
    return dg.AssetKey(name[1:]) if name.startswith("@") else topic_key(name)


def topic_specs(registry: TopicRegistry) -> list[dg.AssetSpec]:
    """One external asset per registry topic (dead-letter topics aside)."""
    specs = []
    for topic in registry.topics:
        if topic.name.startswith("dlq."):
            continue
        specs.append(
            dg.AssetSpec(
                topic_key(topic.name),
                description=topic.description,
                deps=[_dep(d) for d in TOPIC_UPSTREAM.get(topic.name, ())],
                group_name="streams",
                kinds={"kafka"},
                metadata={"topic": topic.name, "key": topic.key, "schema": topic.schema},
            )
        )
    return specs


def table_specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            table_key(table),
            description=f"The {table} table, written by the flow consuming {topic}.",
            deps=[topic_key(topic)],
            group_name="tables",
            kinds={"postgres"},
            metadata={"table": table},
        )
        for table, topic in FLOW_TABLES.items()
    ]


WALLET_FILLS_TABLE = table_key("wallet_fills")
PNL_SNAPSHOTS_TABLE = table_key("pnl_snapshots")
