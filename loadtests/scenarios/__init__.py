"""One Locust file per scenario; `loadtests.run` names the file, `loadtests/locustfile.py`
picks one by the LOADTEST_SCENARIO variable for interactive runs."""
