#!/usr/bin/env python3
"""A seed-dialect client written exactly like the 2012 "xcp-api / Domains" document's example:
Python 3 and nothing but the standard library's xmlrpc.client.

Usage: python3 test/python/seed_client_test.py http://127.0.0.1:8440
Prints "N passed, M failed" and exits non-zero when anything failed.
"""
import sys
import time
import uuid
import xmlrpc.client

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   %s" % name)
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))
    return cond


def value(reply):
    """Unwraps {'Status': 'Success', 'Value': v}; raises on a Failure."""
    if reply.get("Status") != "Success":
        raise RuntimeError("call failed: %r" % (reply,))
    return reply.get("Value")


def wait_task(c, task, timeout=20.0):
    deadline = time.time() + timeout
    while True:
        t = value(c.Task.stat({"dbg": "py", "id": task}))
        if t["result"][0] != "Pending":
            return t
        if time.time() > deadline:
            raise RuntimeError("task %s still pending: %r" % (task, t))
        time.sleep(0.02)


def main(url):
    c = xmlrpc.client.ServerProxy(url)

    # The seed document's own example.
    r = c.Query.query({"dbg": "x"})
    check("Query.query returns a Success dict", isinstance(r, dict) and r.get("Status") == "Success", repr(r))
    q = r["Value"]
    check("Query.t has name xenops", q.get("name") == "xenops", repr(q))
    check("Query.t keys", sorted(q.keys()) == ["features", "instance_id", "name", "vendor", "version"], repr(q))

    vm = "py-" + str(uuid.uuid4())
    t = {
        "id": vm,
        "name": "python-seed",
        "ssidref": 0,
        "xsdata": {},
        "platformdata": {},
        "bios_strings": {},
        "ty": ["PV", {"boot": ["Direct", {"kernel": "/boot/vmlinuz", "cmdline": "quiet", "ramdisk": []}],
                      "framebuffer": False, "vncterm": True, "vncterm_ip": []}],
        "suppress_spurious_page_faults": False,
        "machine_address_size": [],
        "memory_static_max": 268435456,
        "memory_dynamic_max": 268435456,
        "memory_dynamic_min": 134217728,
        "vcpu_max": 2,
        "vcpus": 1,
        "scheduler_params": {"priority": {"weight": 256, "cap": 0}, "affinity": []},
        "on_crash": ["Coredump"],
        "on_shutdown": ["Shutdown"],
        "on_reboot": ["Start"],
        "transient": False,
        "pci_msitranslate": False,
        "pci_power_mgmt": False,
    }
    r = c.Vm.add({"dbg": "py", "t": t})
    check("Vm.add returns the id", r == {"Status": "Success", "Value": vm}, repr(r))

    r = c.Vm.add({"dbg": "py", "t": t})
    check("Vm.add of an existing id fails Already_exists",
          r == {"Status": "Failure", "ErrorDescription": "Already_exists"}, repr(r))

    task = value(c.Vm.start({"dbg": "py", "id": vm}))
    check("Vm.start returns a task id", isinstance(task, str) and task.isdigit(), repr(task))
    done = wait_task(c, task)
    check("Task.stat shape", sorted(done.keys()) == ["id", "result", "subtasks"] and done["subtasks"] == {}, repr(done))
    check("start task Completed", done["result"][0] == "Completed" and isinstance(done["result"][1], float), repr(done))

    st = value(c.Vm.stat({"dbg": "py", "id": vm}))
    check("Vm.stat is a one-element list", isinstance(st, list) and len(st) == 1, repr(st))
    cfg, state = st[0]
    check("Vm.stat shows Running", state["power_state"] == "Running", repr(state))
    check("Vm.stat config round-trips", cfg["name"] == "python-seed" and cfg["scheduler_params"]["priority"] == {"weight": 256, "cap": 0},
          repr(cfg))

    vms = value(c.Vm.list({"dbg": "py"}))
    check("Vm.list includes the VM", any(v[0]["id"] == vm for v in vms))

    r = c.Vm.remove({"dbg": "py", "id": vm})
    check("Vm.remove of a running VM fails Bad_power_state",
          r.get("ErrorDescription") == ["Bad_power_state", ["Running", "Halted"]], repr(r))

    task = value(c.Vm.shutdown({"dbg": "py", "id": vm, "clean_shutdown_timeout": 10.0}))
    done = wait_task(c, task)
    check("shutdown task Completed", done["result"][0] == "Completed", repr(done))
    st = value(c.Vm.stat({"dbg": "py", "id": vm}))
    check("Vm.stat shows Halted", st[0][1]["power_state"] == "Halted", repr(st))

    r = c.Vm.remove({"dbg": "py", "id": vm})
    check("Vm.remove succeeds", r.get("Status") == "Success", repr(r))
    check("Vm.stat after remove is []", value(c.Vm.stat({"dbg": "py", "id": vm})) == [])

    r = c.Task.stat({"dbg": "py", "id": "999999999"})
    check("Task.stat unknown", r.get("ErrorDescription") == ["Does_not_exist", ["task", "999999999"]], repr(r))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: seed_client_test.py URL", file=sys.stderr)
        sys.exit(2)
    try:
        main(sys.argv[1])
    except Exception as e:  # an unexpected exception counts as a failure
        failed += 1
        print("FAIL unexpected %s: %s" % (type(e).__name__, e))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed or not passed else 0)
