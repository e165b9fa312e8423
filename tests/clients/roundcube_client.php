<?php
// Drives Roundcube's own IMAP library (rcube_imap_generic, from Debian's roundcube-core) against
// a server the way the webmail's message list does: SORT for sorted pages, THREAD for the thread
// view, ESEARCH-style SEARCH for counts. Prints one JSON object with what the library parsed.
// Usage: php roundcube_client.php LIBDIR HOST PORT USER PASSWORD MAILBOX
[$_, $lib, $host, $port, $user, $pass, $mailbox] = $argv;
require_once "$lib/bootstrap.php";
$imap = new rcube_imap_generic();
if (!$imap->connect($host, $user, $pass, ['port' => (int)$port, 'ssl_mode' => null, 'auth_type' => 'PLAIN'])) {
    fwrite(STDERR, "connect failed: " . $imap->error . "\n");
    exit(1);
}
$out = ['capabilities' => []];
foreach (['SORT', 'SORT=DISPLAY', 'THREAD=REFERENCES', 'THREAD=ORDEREDSUBJECT', 'THREAD=REFS', 'ESORT', 'ESEARCH', 'CONTEXT=SORT', 'I18NLEVEL=1', 'WITHIN'] as $c) {
    if ($imap->getCapability($c)) {
        $out['capabilities'][] = $c;
    }
}
foreach (['ARRIVAL', 'DATE', 'SUBJECT', 'FROM', 'TO', 'CC', 'SIZE'] as $field) {
    $r = $imap->sort($mailbox, $field, 'ALL', true, 'UTF-8');
    $out['sort'][$field] = $r->is_error() ? null : array_map('intval', $r->get());
}
foreach (['REFERENCES', 'ORDEREDSUBJECT', 'REFS'] as $alg) {
    $r = $imap->thread($mailbox, $alg, 'ALL', true, 'UTF-8');
    $out['thread'][$alg] = $r->is_error() ? null : $r->get_tree();
    // The messages in thread order (roots in order, each followed by its descendants).
    $out['thread_order'][$alg] = $r->is_error() ? null : array_map('intval', $r->get());
}
$r = $imap->search($mailbox, 'ALL', true, ['COUNT', 'MIN', 'MAX']);
$out['search_count'] = $r->is_error() ? null : $r->count();
$imap->closeConnection();
echo json_encode($out), "\n";
