"""Everything that talks to, or runs on, a device: SSH sessions, the device registry, tegrastats, the agent.

Kept import-free on purpose: `remote.agent.tegrastats` and `remote.agent` are pushed to Python 3.6 devices.
"""
