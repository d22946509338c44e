"""Message tables of the labs' languages (see ``xenlab.i18n``).

Real Xen: (none: teaching material)
"""
