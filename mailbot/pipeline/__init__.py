"""The pure decision core: data in, data out, no I/O."""
