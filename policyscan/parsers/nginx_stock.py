"""The files nginx and the distributions' packages ship beside nginx.conf (``mime.types``,
``fastcgi_params``, Debian's ``snippets/fastcgi-php.conf``...). They hold only types and
``*_param`` lines, nothing of a project's own and no setting a rule asks about: an include of
one that the scan does not have is neither a missing file nor a hidden setting. Compared by
file name. Kept apart from the parser so that loading policies does not import crossplane."""

from __future__ import annotations

STOCK_FILES = frozenset(
    {
        "mime.types",
        "fastcgi_params",
        "fastcgi.conf",
        "fastcgi-php.conf",
        "uwsgi_params",
        "scgi_params",
        "proxy_params",
        "koi-utf",
        "koi-win",
        "win-utf",
    }
)
