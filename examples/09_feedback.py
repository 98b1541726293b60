"""09 - the feedback loop: a reviewer's verdict changes the next run's prompt.

A refund of 900 runs (routed ``review``); a reviewer marks it ``incorrect`` and writes
guidance. The feedback loop turns that review into an active guidance item (one review
by a designated owner is enough here; the default needs two concurring reviewers) and
``ReviewerFeedback`` puts it into the system prompt of the next run. Store only, no
Phoenix: the verdict is recorded as ``ReviewQueue.collect()`` would record it.

    python examples/09_feedback.py
"""

import uuid
from datetime import datetime, timezone

from langchain_core.messages import AIMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

from hitl_langgraph import GatedToolNode, RequestFilter, RiskPolicy, Rule, open_store
from hitl_langgraph.feedback import (
    FeedbackLoop,
    GuidanceConfig,
    ReviewerFeedback,
    StoreContextResolver,
    StoreGuidance,
)
from hitl_langgraph.store.review_records import ReviewRecord, annotation_key
from hitl_langgraph.testing import ScriptedChatModel

store = open_store("memory://")
feedback = ReviewerFeedback(StoreGuidance(store, ttl=0), record_spans=False)
prompts = []


@tool
def refund(order: str, amount: int) -> str:
    """Refund an order."""
    return f"refunded {amount} on {order}"


def script(messages):
    prompts.append(messages[0].content)
    if messages[-1].type == "human":
        return AIMessage("", tool_calls=[{"name": "refund", "id": f"c_{uuid.uuid4().hex[:8]}",
                                          "args": {"order": "O-7", "amount": 900}}])
    return AIMessage("Done.")


def payments(state):
    system = feedback.apply("You are the payments agent.", node="payments",
                            input=state["messages"][0].content, tools=["refund"])
    return {"messages": [model.invoke([SystemMessage(system), *state["messages"]])]}


model = ScriptedChatModel(script=script)
graph = StateGraph(MessagesState)
graph.add_node("payments", payments)
graph.add_node("tools", GatedToolNode([refund], store=store,
                                      policy=RiskPolicy([Rule(tool="refund", score=0.6)])))
graph.add_edge(START, "payments")
graph.add_conditional_edges("payments", tools_condition)
graph.add_edge("tools", "payments")
app = graph.compile(checkpointer=InMemorySaver())


def run():
    prompts.clear()
    app.invoke({"messages": [("user", "refund order O-7, 900")]},
               {"configurable": {"thread_id": str(uuid.uuid4())}})
    return prompts[0]


print("prompt before:", run())
request = store.list_requests(RequestFilter(status=None))[0]
now, span, who = datetime.now(timezone.utc), uuid.uuid4().hex[:16], "human:alice"
for name, fields in [("hitl_verdict", {"label": "incorrect"}),
                     ("hitl_guidance", {"explanation": "Refunds over 500 need a manager."})]:
    store.put_review(ReviewRecord(
        review_id=annotation_key("payments", span, name, who), project="payments",
        span_id=span, name=name, identifier=who, annotator_kind="HUMAN", source="API",
        created_at=now, updated_at=now, collected_at=now, reviewer="alice",
        request_id=request.request_id, **fields))

loop = FeedbackLoop(store, project="payments", guidance=GuidanceConfig(owners={"alice"}),
                    resolver=StoreContextResolver(store, node_of={"refund": "payments"}))
report = loop.run_once()
print("active guidance:", [item.instruction for item in report.guidance.active])
print("prompt after:", run())
