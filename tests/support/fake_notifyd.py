#!/usr/bin/python3
"""A capturing org.freedesktop.Notifications server for tests.

Owns the bus name on the session bus it is started on (a private one, under
dbus-run-session), prints "ready" once it owns the name, then one JSON line
per Notify call on stdout (with its hints), and one line {"closed": ID}
per CloseNotification call, flushed, so a test can await each toast as it
arrives or goes instead of sleeping.

A line "invoke ID KEY" on stdin presses the button KEY of toast ID (emits
ActionInvoked), as a user clicking it would.
"""
import json
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


def plain(value):
    """A D-Bus hint value as JSON (strings, numbers, booleans; image data
    and other arrays become their length)."""
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, (dbus.String, dbus.ObjectPath, str)):
        return str(value)
    if isinstance(value, (dbus.Byte, dbus.Int16, dbus.Int32, dbus.Int64, dbus.UInt16, dbus.UInt32, dbus.UInt64, int)):
        return int(value)
    if isinstance(value, dbus.Double):
        return float(value)
    try:
        return {"length": len(value)}
    except TypeError:
        return repr(value)


class Server(dbus.service.Object):
    def __init__(self, bus):
        self.next_id = 0
        self.open = set()
        name = dbus.service.BusName(IFACE, bus, do_not_queue=True)
        super().__init__(name, PATH)

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app_name, replaces_id, icon, summary, body, actions, hints, timeout):
        # The spec: replacing a toast still shown keeps its id.
        if replaces_id and replaces_id in self.open:
            notification_id = int(replaces_id)
        else:
            self.next_id += 1
            notification_id = self.next_id
        self.open.add(notification_id)
        record = {
            "id": notification_id,
            "app_name": str(app_name),
            "summary": str(summary),
            "body": str(body),
            "icon": str(icon),
            "actions": [str(a) for a in actions],
            "hints": {str(k): plain(v) for k, v in hints.items()},
            "replaces_id": int(replaces_id),
            "timeout": int(timeout),
        }
        print(json.dumps(record), flush=True)
        return dbus.UInt32(notification_id)

    @dbus.service.method(IFACE, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return ["actions", "body", "body-markup"]

    @dbus.service.method(IFACE, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("vigie-test-notifyd", "vigie", "1.0", "1.2")

    @dbus.service.method(IFACE, in_signature="u", out_signature="")
    def CloseNotification(self, notification_id):
        self.open.discard(int(notification_id))
        print(json.dumps({"closed": int(notification_id)}), flush=True)
        # 3: closed by a call to CloseNotification.
        self.NotificationClosed(notification_id, 3)

    @dbus.service.signal(IFACE, signature="uu")
    def NotificationClosed(self, notification_id, reason):
        pass

    @dbus.service.signal(IFACE, signature="us")
    def ActionInvoked(self, notification_id, action_key):
        pass


def main():
    DBusGMainLoop(set_as_default=True)
    server = Server(dbus.SessionBus())

    def on_stdin(source, _condition):
        line = source.readline()
        if not line:
            return False
        parts = line.split()
        if len(parts) == 3 and parts[0] == "invoke":
            server.ActionInvoked(dbus.UInt32(int(parts[1])), parts[2])
        return True

    GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_stdin)
    print("ready", flush=True)
    GLib.MainLoop().run()
    del server


if __name__ == "__main__":
    sys.exit(main())
