"""The feedback loop's own latency: from stored verdicts to live guidance, no polling.

The refund scenario of ``bench/bench_feedback.py`` on an SQLite store (store-only
collection, so Phoenix's ingest is not counted): the agent runs until two reviewers
have marked two over-500 refunds "incorrect" with the rule as guidance (written as
``ReviewQueue.collect()`` would store them). Then, timed: one ``FeedbackLoop.run_once()``
(derive, publish, priors, compensations) plus the agent's guidance read
(``ReviewerFeedback.render``, TTL 0) that first carries the rule - the work between a
verdict and live guidance. An idle ``run_once()`` (nothing new) is timed too. The
polling interval (how often ``run_once`` is called) and the agents' cache TTL add to
this end to end; they are settings, reported as such, not measured here.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from .core import Context

NAME = "feedback"
PARTS = 1


def run(ctx: Context) -> None:
    from . import bench_feedback as bf

    for _rep in ctx.repeats(NAME):
        args = argparse.Namespace(
            ttl=0.0, interval=2.0, requests=0, max_learning=40, no_phoenix=True
        )
        with tempfile.TemporaryDirectory() as d:
            sc = bf.Scenario(args, Path(d))
            project = f"bench-feedback-{uuid.uuid4().hex[:6]}"
            feedback = bf.ReviewerFeedback(bf.StoreGuidance(sc.store, ttl=0.0), record_spans=False)
            loop = bf.FeedbackLoop(
                sc.store,
                project=project,
                resolver=bf.StoreContextResolver(sc.store, node_of={"refund": "payments"}),
                adaptive=sc.adaptive,
                compensations={"refund": lambda req, sc=sc: sc.undone.append(req.request_id)},
            )
            app, seen, done = bf.build_app(sc.store, feedback, sc.policy, [])
            loop.run_once()
            t0 = time.perf_counter()
            loop.run_once()
            idle = time.perf_counter() - t0
            wrong = 0
            for _ in range(args.max_learning):
                out = sc.run(app, done, seen)
                if not (out.refunded and out.wrong):
                    continue
                rid = sc.store.list_requests(bf.RequestFilter(status=None), limit=1000)[
                    -1
                ].request_id
                bf.verdict_records(
                    sc.store, rid, uuid.uuid4().hex[:16], ["alice", "bob"][wrong % 2], True, project
                )
                wrong += 1
                if wrong == 2:
                    break
            assert wrong == 2, "the scenario made no wrong refunds to review"
            t0 = time.perf_counter()
            loop.run_once()
            text = feedback.render(node="payments", tools=["refund"]).text
            live = time.perf_counter() - t0
            if "manager's approval" not in text:
                raise RuntimeError(
                    "one run_once() after two verdicts did not make the guidance live"
                )
            sc.store.close()
        ctx.record(
            NAME,
            "verdict -> live guidance (loop's own work)",
            ours=live * 1000,
            ours_label="FeedbackLoop.run_once() + first guidance read (SQLite store)",
            how="two stored 'incorrect' verdicts with guidance; timed from the loop call to the "
            "first read carrying the rule; excludes the polling interval (a setting, 2 s in "
            "bench_feedback) and the agents' cache TTL (set to 0 here)",
        )
        ctx.record(
            NAME,
            "idle loop run (nothing new)",
            ours=idle * 1000,
            ours_label="FeedbackLoop.run_once()",
            how="same store, before any verdict",
        )
