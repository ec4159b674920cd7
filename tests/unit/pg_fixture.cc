// See pg_fixture.h. One thread (the test's).
#include "pg_fixture.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>

#include <pqxx/pqxx>

namespace meshfwd::test {
namespace {

const std::string script = std::string{MESHFWD_SOURCE_DIR} + "/scripts/pg-temp.sh";

std::string url_for(const std::string& dir, const std::string& db) {
    return "postgresql://meshcoord@/" + db + "?host=" + dir + "&port=5432";
}

} // namespace

result<std::unique_ptr<pg_temp_server>> pg_temp_server::start() {
    char tmpl[] = "/tmp/meshfwd-pg.XXXXXX";
    if (!mkdtemp(tmpl)) {
        return make_error("mkdtemp failed");
    }
    std::string dir = tmpl;
    // The watchdog first: whatever happens from here on, it cleans up once its pipe closes.
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return make_error("pipe2 failed");
    }
    pid_t pid = fork();
    if (pid < 0) {
        return make_error("fork failed");
    }
    if (pid == 0) {
        dup2(fds[0], STDIN_FILENO); // dup2 clears O_CLOEXEC on the copy
        setsid();                   // out of the test's process group: a ^C reaches the test first
        execl("/bin/sh", "sh", "-c", "cat >/dev/null; exec \"$0\" stop \"$1\"", script.c_str(), dir.c_str(),
              static_cast<char*>(nullptr));
        _exit(127);
    }
    close(fds[0]);
    std::unique_ptr<pg_temp_server> server(new pg_temp_server(dir, pid, fds[1]));

    std::string command = script + " start " + dir + " postgres 2>&1";
    FILE* p = popen(command.c_str(), "r");
    if (!p) {
        return make_error("cannot run " + script);
    }
    std::string output;
    std::array<char, 512> buf;
    while (std::size_t n = fread(buf.data(), 1, buf.size(), p)) {
        output.append(buf.data(), n);
    }
    int status = pclose(p);
    if (status != 0) {
        return make_error("PostgreSQL for the tests did not start (" + script + "): " + output);
    }
    return server;
}

pg_temp_server::~pg_temp_server() {
    close(_watchdog_fd);
    int status = 0;
    waitpid(_watchdog, &status, 0);
}

result<std::string> pg_temp_server::create_database(const std::string& name) {
    try {
        pqxx::connection c(url_for(_dir, "postgres"));
        pqxx::nontransaction tx(c);
        tx.exec("CREATE DATABASE " + tx.quote_name(name));
    } catch (const std::exception& e) {
        return make_error(std::string{"CREATE DATABASE "} + name + ": " + e.what());
    }
    return url_for(_dir, name);
}

} // namespace meshfwd::test
