"""02 - the risk policy on its own: score each proposed action and route it.

Routes: ``auto`` (run), ``review`` (run, sampled for later review), ``approve`` (block
for a human), ``deny`` (never run). Default thresholds: review above 0.5, approve above
0.85. A tool no rule matches routes to ``approve`` (fail closed). Pure Python, no graph.

    python examples/02_policy.py
"""

from hitl_langgraph import Action, RiskPolicy, Rule

policy = RiskPolicy(
    rules=[
        Rule(tool="lookup_*", score=0.0),
        Rule(tool="refund", score=0.6),
        Rule(
            tool="transfer_funds",
            score=lambda args: min(args["amount"] / 10_000, 1.0),
            approver_roles=frozenset({"finance"}),
        ),
        Rule(tool="close_account", route="deny", reason="a branch closes accounts"),
    ]
)

proposals = [
    Action("lookup_account", {"name": "alice"}),
    Action("refund", {"order": "O-1", "amount": 120}),
    Action("transfer_funds", {"amount": 300, "to": "alice"}),
    Action("transfer_funds", {"amount": 9500, "to": "bob"}),
    Action("close_account", {"name": "mallory"}),
    Action("delete_database", {}),  # no rule: fail closed
]
print(f"{'action':<16} {'score':>5}  {'route':<8} why")
for action in proposals:
    a = policy.assess(action)
    print(f"{action.tool:<16} {a.score:>5.2f}  {a.route:<8} {'; '.join(a.reasons)}")
