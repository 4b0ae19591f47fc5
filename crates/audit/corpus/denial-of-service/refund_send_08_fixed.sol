// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

// Losing bidders withdraw their own bids.
contract SealedAuction {
    mapping(address => uint256) public bids;

    function bid() external payable {
        bids[msg.sender] += msg.value;
    }

    function withdrawBid() external {
        uint256 amount = bids[msg.sender];
        bids[msg.sender] = 0;
        payable(msg.sender).transfer(amount);
    }
}
