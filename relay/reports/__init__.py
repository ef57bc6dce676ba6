"""Reports: what happened, counted from the database — an alert's or a drill run's figures
(`tally`), written as JSON, CSV or HTML (`formats`) with Japanese labels (`labels_ja`), and the
reach comparison of the ward's 2015 design with the cascade (`reach`).

Reports read; they change nothing.

May import: foundation, questions, directory, alerts, replies.
Must not import: messages, accounts, delivery, drills, cap, web, cli, channels, simulator,
workers, jma.
"""
