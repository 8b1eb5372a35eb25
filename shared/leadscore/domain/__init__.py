"""The pure domain: no I/O, no clock, no environment. Time always arrives as `now`."""
