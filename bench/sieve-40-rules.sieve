# A realistic user filter of 40 rules for the `sieve` row of bench/run: what Roundcube's
# managesieve plugin writes for a user with lists, colleagues, notifications and spam rules.
# The bench message (From: bench@example.net, Subject: "bench message N") matches the last rule
# only, so every test runs for every delivery. Mailcove and Dovecot/Pigeonhole run the same text.
require ["fileinto", "imap4flags", "mailbox", "body", "regex", "envelope", "variables", "relational", "comparator-i;ascii-numeric"];

# rule 1-8: mailing lists by List-Id
if header :contains "list-id" "rust-users.example.org" { fileinto :create "Lists/rust-users"; stop; }
if header :contains "list-id" "dovecot.dovecot.org" { fileinto :create "Lists/dovecot"; stop; }
if header :contains "list-id" "postfix-users.postfix.org" { fileinto :create "Lists/postfix"; stop; }
if header :contains "list-id" "debian-devel.lists.debian.org" { fileinto :create "Lists/debian-devel"; stop; }
if header :contains "list-id" "linux-kernel.vger.kernel.org" { fileinto :create "Lists/lkml"; stop; }
if header :contains "list-id" "tokio.example.org" { fileinto :create "Lists/tokio"; stop; }
if header :contains "list-id" "ietf.ietf.org" { fileinto :create "Lists/ietf"; stop; }
if header :contains "list-id" "sieve.ietf.org" { fileinto :create "Lists/sieve"; stop; }

# rule 9-16: people and teams by address
if address :is "from" "boss@corp.example" { addflag "\\Flagged"; fileinto :create "Work/Boss"; stop; }
if address :domain :is "from" "customer-a.example" { fileinto :create "Customers/A"; stop; }
if address :domain :is "from" "customer-b.example" { fileinto :create "Customers/B"; stop; }
if address :localpart :is "from" ["hr", "payroll"] { fileinto :create "Work/HR"; stop; }
if address :all :contains ["to", "cc"] "team-infra@corp.example" { fileinto :create "Work/Infra"; stop; }
if address :all :contains ["to", "cc"] "team-mail@corp.example" { fileinto :create "Work/Mail"; stop; }
if address :is "from" ["mum@family.example", "dad@family.example"] { addflag "$Family"; fileinto :create "Family"; stop; }
if envelope :domain :is "from" "bounces.shop.example" { fileinto :create "Shopping"; stop; }

# rule 17-24: notifications by subject
if header :contains "subject" "[JIRA]" { fileinto :create "Notify/Jira"; stop; }
if header :contains "subject" "[GitHub]" { fileinto :create "Notify/GitHub"; stop; }
if header :matches "subject" "*build failed*" { addflag "\\Flagged"; fileinto :create "Notify/CI"; stop; }
if header :matches "subject" "Cron <*>*" { fileinto :create "Notify/Cron"; stop; }
if header :contains "subject" "Your order" { fileinto :create "Shopping"; stop; }
if header :contains "subject" "invoice" { addflag "$Invoice"; fileinto :create "Finance"; stop; }
if header :is "x-mailer" "Nagios" { fileinto :create "Notify/Nagios"; stop; }
if exists "x-github-reason" { fileinto :create "Notify/GitHub"; stop; }

# rule 25-32: regular expressions
if header :regex "subject" "^\\[ticket #[0-9]+\\]" { fileinto :create "Tickets"; stop; }
if header :regex "from" "^.*@(alerts|monitoring)\\.corp\\.example" { fileinto :create "Notify/Alerts"; stop; }
if header :regex "subject" "newsletter|weekly digest" { fileinto :create "Newsletters"; stop; }
if header :regex "x-originating-ip" "^\\[?10\\." { addflag "$Internal"; }
if address :regex "from" "^noreply-[a-z]+@.*$" { fileinto :create "Notify/NoReply"; stop; }
if header :regex "subject" "^(re|fwd?): \\[support\\]" { fileinto :create "Support"; stop; }
if header :regex "received" "from unknown \\(" { addflag "$Suspicious"; }
if header :regex "message-id" "@calendar\\.example>$" { fileinto :create "Calendar"; stop; }

# rule 33-38: spam and size, body
if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "5" { fileinto :create "Junk"; stop; }
if header :contains "x-spam-flag" "YES" { fileinto :create "Junk"; stop; }
if body :contains "unsubscribe from this list" { fileinto :create "Newsletters"; stop; }
if body :contains ["wire transfer urgently", "lottery winner"] { fileinto :create "Junk"; stop; }
if size :over 20M { addflag "$Large"; }
if header :contains "precedence" ["bulk", "junk"] { fileinto :create "Bulk"; stop; }

# rule 39-40: the catch-alls that match the bench message
if header :matches "subject" "bench message *" { set "n" "${1}"; addflag "$Bench"; }
if address :domain :is "from" "example.net" { fileinto :create "Bench"; stop; }
