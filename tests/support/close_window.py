#!/usr/bin/python3
"""Asks the X window named argv[1] to close, the way a window manager does
when the user clicks its close button: a WM_DELETE_WINDOW client message
(not XDestroyWindow, which would yank the window from under its toolkit).
Exits 0 once the message is sent, 1 if no such window exists."""
import sys

from Xlib import X, display, protocol


def title(d, window):
    # _NET_WM_NAME is UTF-8; WM_NAME may be Latin-1 or compound text, which
    # mangles a title like "Vigie — Settings".
    prop = window.get_full_property(d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING"))
    if prop is not None:
        value = prop.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return window.get_wm_name()


def find(d, window, name):
    if title(d, window) == name:
        return window
    for child in window.query_tree().children:
        found = find(d, child, name)
        if found is not None:
            return found
    return None


def main():
    d = display.Display()
    target = find(d, d.screen().root, sys.argv[1])
    if target is None:
        print(f"no window named {sys.argv[1]!r}", file=sys.stderr)
        return 1
    protocols = d.intern_atom("WM_PROTOCOLS")
    delete = d.intern_atom("WM_DELETE_WINDOW")
    event = protocol.event.ClientMessage(
        window=target, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])
    )
    target.send_event(event, event_mask=X.NoEventMask)
    d.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
