"""The appliance command line (AsyncOS-style): ``manage.py appliance_cli --lab LAB HOSTNAME``.

An interpreter over a line iterator: tests feed a list of lines and read the
transcript; the management command feeds standard input. It calls the same
services, permissions and selectors as the GUI, so what the CLI does the GUI
shows, and the reverse. See docs/cli.md.
"""

from gateway_ui.cli.interpreter import ApplianceCLI, run_cli

__all__ = ["ApplianceCLI", "run_cli"]
