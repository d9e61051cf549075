"""Suite-wide test settings."""

import os

from hypothesis import settings

# Property tests check invariants, not speed: a loaded CI machine must not fail them on hypothesis' 200 ms
# per-example deadline. CI derandomizes them so a run is reproducible.
settings.register_profile("lorasite", deadline=None, derandomize=os.environ.get("CI") == "true")
settings.load_profile("lorasite")
