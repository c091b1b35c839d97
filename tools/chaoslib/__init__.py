"""The pieces of `tools/chaos.py`, a Jepsen-style test of a real abcd cluster.

    options   command line -> RunOptions (all validation happens here)
    cluster   the member processes: ids, leader, signals, the faults API, membership calls
    schedule  the nemesis's fault sequence, drawn from a seed
    nemesis   applies the schedule to the cluster, one fault at a time, and logs it
    workload  the clients' puts, gets, deletes and cas, recorded in the history
    verdict   the history checked key by key (abcd.check), and lost writes
    progress  live progress (tqdm on a terminal if installed, plain lines otherwise)
    report    the tables at the end and the history file
    runner    one run from start to verdict
    failover  `chaos.py failover`: time a leader's kill -9 to the next acknowledged write
    cli       the two commands
"""
