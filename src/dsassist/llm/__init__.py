"""Language models behind the agents: settings, providers, routing within a budget, prompts, parsing."""
