// A throwaway PostgreSQL server for tests: scripts/pg-temp.sh starts it in a temporary directory
// (unix socket only) and a watchdog process stops it and removes the directory when this object
// is destroyed or the test process dies, even by a crash. One thread (the test's).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "lib/result.h"

namespace meshfwd::test {

class pg_temp_server {
public:
    // Fails (never skips) when PostgreSQL is missing or does not start; the message says why.
    static result<std::unique_ptr<pg_temp_server>> start();
    ~pg_temp_server();
    pg_temp_server(const pg_temp_server&) = delete;
    pg_temp_server& operator=(const pg_temp_server&) = delete;

    // Creates a fresh database and returns its libpq URL.
    result<std::string> create_database(const std::string& name);
    const std::string& dir() const { return _dir; }

private:
    pg_temp_server(std::string dir, pid_t watchdog, int watchdog_fd)
        : _dir(std::move(dir)), _watchdog(watchdog), _watchdog_fd(watchdog_fd) {}

    std::string _dir;
    pid_t _watchdog;
    int _watchdog_fd; // closing it (or dying) tells the watchdog to stop the server
};

} // namespace meshfwd::test
