// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

// A required send per bidder: one reverting bidder blocks the auction's close.
contract SealedAuction {
    address payable[] public losers;
    mapping(address => uint256) public bids;
    address public owner;

    constructor() {
        owner = msg.sender;
    }

    function bid() external payable {
        bids[msg.sender] += msg.value;
        losers.push(payable(msg.sender));
    }

    function close() external {
        require(msg.sender == owner, "owner");
        for (uint256 i = 0; i < losers.length; i++) {
            require(losers[i].send(bids[losers[i]]), "refund failed"); // expect: denial-of-service
        }
    }
}
