"""Shared by every process-level test directory: test/lib holds helpers
(tmserver: start/stop the tidemark binary on loopback)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
