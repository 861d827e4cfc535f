"""MAML for reinforcement learning (Section 5.3): task environments on tf-agents."""
