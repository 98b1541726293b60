"""06 - the inbox and the CLI: two reviewers, a quorum of two, across processes.

carol's run asks for a 9,000 transfer (quorum 2, role finance). carol may not approve
her own request; alice approves from Python (the quorum is now partial); the script
then prints the ``hitl`` command with which bob, in another process, gives the second
approval and resumes the graph (``--graph 06_graph:build``). Data: see 06_graph.py.

    python examples/06_inbox_quorum.py
"""

import importlib
import uuid

from hitl_langgraph import Inbox, NotAuthorized, Reviewer, open_store

example = importlib.import_module("06_graph")  # the graph module next to this script
app = example.build()
store = open_store(example.STORE_URL)

thread = str(uuid.uuid4())
app.invoke({"messages": [("user", "pay bob 9000")]},
           {"configurable": {"thread_id": thread, "user_id": "carol"}})

inbox = Inbox(store, app)
request = inbox.pending(thread_id=thread).items[0]
print(f"waiting: {request.request_id} {request.tool} {request.args} quorum={request.quorum}")

try:  # separation of duties: the requester cannot approve
    inbox.approve(request.request_id, reviewer=Reviewer("carol", {"finance"}))
except NotAuthorized as exc:
    print("refused:", exc)

result = inbox.approve(request.request_id, reviewer=Reviewer("alice", {"finance"}),
                       reason="invoice matches")
print("alice:", result.outcome)  # partial: one approval of two

print("bob, from a terminal in examples/:")
print(f"  hitl --store {example.STORE_URL} pending")
print(f"  hitl --store {example.STORE_URL} --graph 06_graph:build "
      f"approve {request.request_id} --as bob --role finance")
