#!/usr/bin/env python3
"""The bench cycle through libvirt's test driver with python3-libvirt.
usage: peer_libvirt.py N THREADS  -> prints one JSON line {ops, seconds, opsPerSecond, p50, p99}"""
import json, sys, threading, time, uuid
import libvirt

N, THREADS = int(sys.argv[1]), int(sys.argv[2])
libvirt.registerErrorHandler(lambda *a: None, None)
conn = libvirt.open('test:///default')
XML = """<domain type='test'><name>{name}</name><uuid>{uuid}</uuid><memory unit='KiB'>1048576</memory>
<currentMemory unit='KiB'>524288</currentMemory><vcpu>2</vcpu><os><type arch='x86_64'>hvm</type><boot dev='cdrom'/></os>
<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash></domain>"""
lat = []
lock = threading.Lock()
nxt = [0]

def worker():
    mine = []
    while True:
        with lock:
            i = nxt[0]; nxt[0] += 1
        if i >= N: break
        u = str(uuid.uuid4())
        t = time.perf_counter(); d = conn.defineXML(XML.format(name='bench-%d' % i, uuid=u)); mine.append(time.perf_counter() - t)
        t = time.perf_counter(); d.create(); mine.append(time.perf_counter() - t)
        t = time.perf_counter(); d.suspend(); d.resume(); mine.append(time.perf_counter() - t)
        t = time.perf_counter(); d.destroy(); mine.append(time.perf_counter() - t)
        t = time.perf_counter(); d.undefine(); mine.append(time.perf_counter() - t)
    with lock:
        lat.extend(mine)

t0 = time.perf_counter()
ts = [threading.Thread(target=worker) for _ in range(THREADS)]
for t in ts: t.start()
for t in ts: t.join()
secs = time.perf_counter() - t0
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else None
print(json.dumps({'ops': len(lat), 'seconds': secs, 'opsPerSecond': len(lat) / secs, 'p50': pct(0.5), 'p99': pct(0.99)}))
