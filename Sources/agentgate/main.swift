print("agentgate")
