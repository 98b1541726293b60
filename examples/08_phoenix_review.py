"""08 - asynchronous oversight: trace to Phoenix, sample for review, verdicts from code.

Refunds are routed ``review``: they run at once, and the sampler picks them for later
review (here every one) with a ``review_request`` annotation on the span. The review
queue lists them with a link to the trace; a verdict is written back to Phoenix and
collected into the store. Needs a running Phoenix (``hitl phoenix``, or ``hitl demo
--keep-phoenix``): its URL as the first argument or ``$PHOENIX_BASE_URL``.

    python examples/08_phoenix_review.py http://127.0.0.1:6006
"""

import os
import sys
import time
import uuid

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

from hitl_langgraph import GatedToolNode, RiskPolicy, Rule, open_store
from hitl_langgraph.review import ReviewQueue, ReviewSampler, ReviewSampling, constant_rate
from hitl_langgraph.testing import ScriptedChatModel
from hitl_langgraph.tracing import GateSpanRecorder, current_trace_ids, setup_tracing

url = (sys.argv[1:] or [os.environ.get("PHOENIX_BASE_URL", "http://127.0.0.1:6006")])[0]
project = f"example-08-{uuid.uuid4().hex[:6]}"
store = open_store("memory://")
tracing = setup_tracing(project, url)
queue = ReviewQueue(url, project=project, store=store)
queue.setup()  # the hitl_verdict / hitl_guidance annotation configs, shown in the UI
sampler = ReviewSampler(store, project=project, client=url, sync_interval=0.5,
                        sampling=ReviewSampling(curve=constant_rate(1.0)))


@tool
def refund(order: str, amount: int) -> str:
    """Refund an order."""
    return f"refunded {amount} on {order}"


def script(messages):
    if messages[-1].type == "human":
        order, amount = messages[-1].content.split()[1:]
        return AIMessage("", tool_calls=[{"name": "refund", "id": f"c_{uuid.uuid4().hex[:8]}",
                                          "args": {"order": order, "amount": int(amount)}}])
    return AIMessage(f"Done: {messages[-1].content}")


model = ScriptedChatModel(script=script)
graph = StateGraph(MessagesState)
graph.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
graph.add_node("tools", GatedToolNode([refund], policy=RiskPolicy([Rule(tool="refund", score=0.6)]),
                                      store=store, observers=[GateSpanRecorder(tracing), sampler],
                                      trace_ids=current_trace_ids))
graph.add_edge(START, "agent")
graph.add_conditional_edges("agent", tools_condition)
graph.add_edge("tools", "agent")
app = graph.compile(checkpointer=InMemorySaver())

for order, amount in [("O-1", 120), ("O-2", 480), ("O-3", 75)]:  # none of them waits
    app.invoke({"messages": [("user", f"refund {order} {amount}")]},
               {"configurable": {"thread_id": str(uuid.uuid4())}})
tracing.force_flush(10)

items = []
for _ in range(60):  # Phoenix ingests spans asynchronously: wait until all three are there
    items = [i for i in queue.pending() if i.input is not None]
    if len(items) == 3:
        break
    time.sleep(0.5)
for item in items:
    print(f"to review: span {item.span_id} input={item.input!r}\n  {item.url}")

queue.submit(items[0].span_id, "correct", reviewer="alice")  # stored, then sent to Phoenix
report = queue.collect(include_reviewed=True)  # verdicts made in the Phoenix UI come back too
print(f"collected {report.annotations} annotation(s); sla: {queue.sla().pending} pending")
sampler.close()
tracing.shutdown(2)
