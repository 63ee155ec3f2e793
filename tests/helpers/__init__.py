"""Test helpers: fake forges, bot harnesses, the real control plane, git repositories, stores."""
