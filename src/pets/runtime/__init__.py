"""The main job in one process: embedded bus, trading loop, journal and report (`pets run`)."""
