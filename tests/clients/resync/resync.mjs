// imapflow (a real IMAP client library that uses CONDSTORE and QRESYNC when a server offers them)
// opening INBOX, either from nothing or resynchronising from a state it saved earlier.
// Driven by tests/clients/test_resync.py; prints one JSON object on stdout.
//
//   node resync.mjs '{"port": 993, "ca": "/path/cert.pem", "user": "demo", "pass": "demo"}'
//   node resync.mjs '{..., "uidValidity": "123", "highestModseq": "456"}'   (resync)
//   node resync.mjs '{..., "watch": {"expunges": 2, "flags": 1}}'           (IDLE)
//
// Without a saved state it fetches every message's UID and flags, as a client's first sync does.
// With one it passes it to mailboxOpen (SELECT INBOX (QRESYNC (uidvalidity modseq))) and
// reports what the server told it through imapflow's 'expunge' and 'flags' events. Every line
// the server sent is counted from imapflow's protocol log, so the caller can check that the
// resync did not refetch everything.
//
// With "watch" it opens INBOX, enters IDLE, prints READY once the server accepted IDLE, and waits
// (at most 30 s) for that many 'expunge' and 'flags' events before it reports them.
import fs from 'node:fs';
import { ImapFlow } from 'imapflow';

const args = JSON.parse(process.argv[2]);

// imapflow logs every protocol line as {src: 's' | 'c', msg}; keep them all.
const serverLines = [];
const clientLines = [];
let announceIdle = false;
const record = entry => {
    if (entry && typeof entry.msg === 'string') {
        if (entry.src === 's' && announceIdle && entry.msg.startsWith('+')) {
            announceIdle = false;
            process.stdout.write('READY\n');
        }
        if (entry.src === 's') serverLines.push(entry.msg);
        if (entry.src === 'c') clientLines.push(entry.msg);
    }
};
// FETCH responses are logged at trace level.
const logger = { trace: record, debug: record, info: record, warn: record, error: record };

const client = new ImapFlow({
    host: '127.0.0.1',
    port: args.port,
    secure: true,
    tls: { ca: [fs.readFileSync(args.ca)], servername: 'localhost' },
    auth: { user: args.user, pass: args.pass },
    qresync: true,
    disableAutoIdle: true,
    logger,
    // Fail instead of hanging the test suite.
    connectionTimeout: 20000,
    greetingTimeout: 20000,
    socketTimeout: 60000
});

const vanished = [];
const flags = {};
let wake = () => {};
client.on('expunge', ev => {
    vanished.push({ uid: ev.uid === undefined ? null : Number(ev.uid), seq: ev.seq ?? null, earlier: !!ev.earlier, vanished: !!ev.vanished });
    wake();
});
client.on('flags', ev => {
    flags[String(ev.uid)] = [...ev.flags].sort();
    wake();
});

await client.connect();
const out = {
    capabilities: [...client.capabilities.keys()].sort(),
    enabled: [...client.enabled].sort()
};
const opts = {};
if (args.uidValidity !== undefined) {
    opts.uidValidity = BigInt(args.uidValidity);
    opts.changedSince = BigInt(args.highestModseq);
}
const mailbox = await client.mailboxOpen('INBOX', opts);
out.qresync = !!mailbox.qresync;
out.uidValidity = mailbox.uidValidity === undefined ? null : String(mailbox.uidValidity);
out.highestModseq = mailbox.highestModseq === undefined ? null : String(mailbox.highestModseq);
out.uidNext = mailbox.uidNext ?? null;
out.exists = mailbox.exists ?? null;
out.vanished = vanished;
out.flags = flags;
if (args.uidValidity === undefined) {
    // A first sync: every message's UID and flags.
    out.messages = {};
    if (mailbox.exists > 0) {
        for await (const msg of client.fetch('1:*', { uid: true, flags: true })) {
            out.messages[String(msg.uid)] = [...msg.flags].sort();
        }
    }
}
if (args.watch) {
    // Only what arrives during IDLE counts.
    vanished.length = 0;
    for (const uid of Object.keys(flags)) delete flags[uid];
    const done = () => vanished.length >= args.watch.expunges && Object.keys(flags).length >= args.watch.flags;
    const waited = new Promise(resolve => {
        wake = () => done() && resolve(true);
        // unref: a pending timer must not keep node alive after the report.
        setTimeout(() => resolve(false), 30000).unref();
    });
    announceIdle = true;
    const idling = client.idle();
    out.complete = await waited;
    out.vanished = vanished;
    out.flags = flags;
    out.exists = client.mailbox.exists;
    // LOGOUT ends IDLE (imapflow sends DONE first).
    await client.logout();
    await idling.catch(() => {});
} else {
    await client.logout();
}
out.serverFetchLines = serverLines.filter(l => /^\* \d+ FETCH /.test(l)).length;
out.serverLines = serverLines.length;
out.clientCommands = clientLines;
process.stdout.write(JSON.stringify(out) + '\n');
