"""The only code that changes stored state.

``do_*`` make one whole change on the connection they are given (the caller's transaction)
and write an audit row; ``get_*``/``list_*`` read; ``access_*_by_id`` fetch with a role check.
"""
