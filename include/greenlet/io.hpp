// io.hpp: the I/O layer: sockets, streams, datagram endpoints and the loop's reactor.
//
//   asyncio::run([] {
//     auto server = asyncio::start_server(
//         [](asyncio::StreamReader r, asyncio::StreamWriter w) {
//           while (true) {
//             std::string data = r.read(4096);
//             if (data.empty()) break;
//             w.write(data);
//             w.drain();
//           }
//         },
//         "127.0.0.1", 8888);
//     server.serve_forever();
//   });
#pragma once

#include "greenlet/asyncio.hpp"
#include "greenlet/io/datagram.hpp"
#include "greenlet/io/errors.hpp"
#include "greenlet/io/names.hpp"
#include "greenlet/io/protocols.hpp"
#include "greenlet/io/signals.hpp"
#include "greenlet/io/socket.hpp"
#include "greenlet/io/streams.hpp"
#include "greenlet/io/subprocess.hpp"
#include "greenlet/io/tls.hpp"
