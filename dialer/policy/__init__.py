"""Pure domain policy: values and functions of them, the clock passed in, no I/O."""
