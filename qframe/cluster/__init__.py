"""The cluster: main process, sentinel, pusher, workers and monitor."""
