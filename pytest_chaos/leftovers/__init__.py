"""What a run leaves behind, and who removes it.

A run marks what it creates where it does not own the place with its identity
(:mod:`.identity`): proxies and toxics on a Toxiproxy server someone else runs, its disk
fill files (:mod:`.register`), the environment of its processes (:mod:`.processes`). A
supervisor process (:mod:`.supervisor`, :mod:`.warden`) starts the run's processes, and
when the run ends however it ends, it ends them and removes what is marked as the run's
(:mod:`.proxies`, :mod:`.register`). The next run removes what runs that died with their
supervisor left behind (:mod:`.sweep`).

Everything the supervisor process imports from here is standard library only: it runs
without site-packages.
"""
