"""The operator's command line: ``dialer campaign ...``, over the services the API uses.

:mod:`.session` opens the database for one command and turns the dialer's errors into exit
codes, :mod:`.output` renders tables and times for a terminal (plain text otherwise),
:mod:`.watching` follows a campaign live, and :mod:`.campaigns` holds the commands.
"""
