"""Environment implementations; the public, versioned modules are ``p2penv.auction_v0`` etc."""
