pragma solidity ^0.4.24;

contract DomainRegistry {
    address public admin;
    uint256 public fee = 0.01 ether;

    struct Entry {
        address holder;
        uint256 expires;
    }

    mapping(bytes32 => Entry) public entries;

    constructor() public {
        admin = msg.sender;
    }

    function register(bytes32 domain) public payable {
        require(msg.value >= fee);
        Entry e; // expect: other
        e.holder = msg.sender;
        e.expires = block.number + 100000;
        entries[domain] = e;
    }

    function collect() public {
        require(msg.sender == admin);
        admin.transfer(address(this).balance);
    }
}
