# agent/: libagent.a (everything but main) and revtun-agent.
# (being written by the agent issue)
