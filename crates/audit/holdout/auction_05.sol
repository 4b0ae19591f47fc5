pragma solidity ^0.5.12;

contract OpenAuction {
    address payable public highestBidder;
    uint256 public highestBid;
    address payable public seller;
    uint256 public endBlock;

    constructor(uint256 blocks) public {
        seller = msg.sender;
        endBlock = block.number + blocks;
    }

    function bid() public payable {
        require(block.number < endBlock, "ended");
        require(msg.value > highestBid, "too low");
        if (highestBid > 0) {
            require(highestBidder.send(highestBid), "refund failed"); // expect: denial-of-service
        }
        highestBidder = msg.sender;
        highestBid = msg.value;
    }

    function finish() public {
        require(block.number >= endBlock, "running");
        require(msg.sender == seller, "seller");
        seller.transfer(address(this).balance);
    }
}
