"""Run-time switches: the device and thread policy, quick mode and progress bars, heap trimming."""
