"""Deployment files (nginx.conf, redis.conf, services.sh) and :mod:`deploy.local`, which runs
throwaway instances of them on 127.0.0.1 for the tests and benchmarks."""
