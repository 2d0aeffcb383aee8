"""Models the tests load instead of training them, each with the script that regenerates it."""
